version 1.0

# Counts the lines of an input file, copies it, and writes one small file per scatter item.
workflow wf {
  input {
    File reads
    Int parts = 2
  }
  scatter (i in range(parts)) {
    call write_part { input: i = i }
  }
  call count_lines { input: reads = reads }
  if (parts > 100) {
    call write_part as never { input: i = 0 }
  }
  output {
    File copy = count_lines.copy
    Int lines = count_lines.lines
    Array[File] part_files = write_part.out
    File? skipped = never.out
  }
}

task write_part {
  input {
    Int i
  }
  command <<<
    echo "part ~{i}" > part_~{i}.txt
  >>>
  output {
    File out = "part_~{i}.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

task count_lines {
  input {
    File reads
  }
  command <<<
    wc -l < "~{reads}" | tr -d ' ' > lines.txt
    cp "~{reads}" copy.txt
    echo "counted" >&2
  >>>
  output {
    File copy = "copy.txt"
    Int lines = read_int("lines.txt")
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
