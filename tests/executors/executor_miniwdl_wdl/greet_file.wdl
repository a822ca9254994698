version 1.0

# hello.wdl with its greeting also written to a file (the contract checks output files).
workflow wf {
  input {
    String who = "world"
  }
  call greet { input: who = who }
  output {
    String greeting = greet.greeting
    File said = greet.said
  }
}

task greet {
  input {
    String who
  }
  command <<<
    echo "hello ~{who}" | tee said.txt
  >>>
  output {
    String greeting = read_string(stdout())
    File said = "said.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
