version 1.0

import "util.wdl" as util

task head_lines {
  input {
    File table
    Int keep
  }
  command <<<
    head -n ~{keep} '~{table}' > head.txt
    head -n 1 '~{table}'
  >>>
  output {
    File head = "head.txt"
    String first = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

task shout {
  input {
    String text
  }
  command <<<
    echo '~{text}' | tr 'a-z' 'A-Z'
  >>>
  output {
    String loud = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
