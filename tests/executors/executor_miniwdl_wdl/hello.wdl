version 1.0

workflow wf {
  input {
    String who = "world"
  }
  call greet { input: who = who }
  output {
    String greeting = greet.greeting
  }
}

task greet {
  input {
    String who
  }
  command <<<
    echo "hello ~{who}"
  >>>
  output {
    String greeting = read_string(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
