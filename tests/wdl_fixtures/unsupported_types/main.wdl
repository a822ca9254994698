version 1.0

struct Sample {
  String name
  File reads
}

workflow unsupported_types {
  input {
    Map[String, Int] sizes
    Pair[Int, String] pair
    Array[Array[File]] batches
    Sample sample
    Map[File, Int] weights
    Int fine = 1
  }

  call list_batches { input: batches = batches }

  output {
    Map[Int, String] codes = {1: "one"}
    Array[Array[File]] all_batches = batches
    Array[Pair[Map[Int, String], Int]] nested = [(codes, 1)]
    Array[String] listing = list_batches.names
    Map[String, Int] sizes_out = sizes
    Array[Array[Int]] grid = [[1, 2], [3]]
    Pair[Int, String] pair_out = pair
    Sample sample_out = sample
    Map[File, Int] weights_out = weights
  }
}

task list_batches {
  input {
    Array[Array[File]] batches
  }
  command <<<
    echo batch
  >>>
  output {
    Array[String] names = read_lines(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
