version 1.0

workflow greetings {
  input {
    String greeting = "hello"
    Int repeat = 2
    Float ratio = 1
    Boolean shout = false
    Array[String] names = ["ada", "grace"]
    Int? limit
    File? extra
    String punctuation = if shout then "!" else "."
    Int people = length(names)
  }

  meta {
    description: "Greets people, a few times over"
  }

  parameter_meta {
    greeting: "What to say"
    repeat: {
      description: "How many rounds of greetings"
    }
  }

  call greet {
    input:
      greeting = greeting,
      repeat = repeat,
      names = names,
      punctuation = punctuation,
      limit = limit,
      extra = extra
  }

  output {
    File greetings = greet.greetings
    Int lines = greet.lines
    Float ratio_used = ratio
    Int? people_greeted = people
  }
}

task greet {
  input {
    String greeting
    Int repeat
    Array[String] names
    String punctuation
    Int? limit
    File? extra
  }
  command <<<
    for round in $(seq 1 ~{repeat}); do
      for name in ~{sep=" " names}; do
        echo "~{greeting} ${name}~{punctuation}"
      done
    done > all.txt
    ~{if defined(extra) then "cat '" + extra + "' >> all.txt" else "true"}
    head -n ~{default="1000" limit} all.txt > greetings.txt
    cat greetings.txt | wc -l
  >>>
  output {
    File greetings = "greetings.txt"
    Int lines = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
