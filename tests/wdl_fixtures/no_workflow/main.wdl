version 1.0

task lonely {
  command <<<
    echo alone
  >>>
  output {
    String said = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
