version 1.0

# A task that writes two lines to stderr and exits with status 1.
workflow wf {
  input {
    File reads
  }
  call count_lines { input: reads = reads }
  output {
    Int lines = count_lines.lines
  }
}

task count_lines {
  input {
    File reads
  }
  command <<<
    echo "reading ~{reads}" >&2
    echo "count_lines: no lines to count" >&2
    exit 1
  >>>
  output {
    Int lines = read_int("lines.txt")
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
