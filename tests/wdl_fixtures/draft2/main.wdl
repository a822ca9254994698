# draft-2: no version line, ${} placeholders, inputs are workflow declarations.
workflow draft2_greeting {
  String name
  Int times = 2
  String? suffix
  String banner = "hi " + name

  call greet { input: name = name, times = times }

  output {
    File greetings = greet.greetings
    Int lines = greet.lines
  }
}

task greet {
  String name
  Int times

  command {
    for i in $(seq 1 ${times}); do echo "hello ${name}"; done > greetings.txt
    cat greetings.txt | wc -l
  }
  output {
    File greetings = "greetings.txt"
    Int lines = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
