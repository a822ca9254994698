version 1.0

task echo_text {
  input {
    String text
  }
  command <<<
    echo '~{text}'
  >>>
  output {
    String echoed = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
