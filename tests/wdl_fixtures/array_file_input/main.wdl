version 1.0

# Counts the lines of every table it is given, and writes a one-line summary.
workflow count_lines {
  input {
    Array[File] tables
    String label = "lines"
  }

  scatter (table in tables) {
    call count { input: table = table }
  }

  call summarize { input: counts = count.lines, label = label }

  output {
    Array[Int] counts = count.lines
    File summary = summarize.summary
  }
}

task count {
  input {
    File table
  }
  command <<<
    cat '~{table}' | wc -l
  >>>
  output {
    Int lines = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

task summarize {
  input {
    Array[Int] counts
    String label
  }
  command <<<
    echo '~{label}: ~{sep="," counts}' > summary.txt
  >>>
  output {
    File summary = "summary.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
