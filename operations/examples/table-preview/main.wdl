version 1.0

# Ferry's WDL example: the first lines of a table, and how many lines it has.
workflow table_preview {
  input {
    File table
    Int lines = 5
  }

  meta {
    description: "The first lines of a table, and its line count (a WDL workflow)"
    version: "1.0.0"
  }

  call head_of { input: table = table, lines = lines }
  call count { input: table = table }

  output {
    File preview = head_of.preview
    Int total_lines = count.total
  }
}

task head_of {
  input {
    File table
    Int lines
  }
  command <<<
    head -n ~{lines} '~{table}' > preview.tsv
  >>>
  output {
    File preview = "preview.tsv"
  }
  runtime {
    docker: "ferry/busybox:latest"
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
    Int total = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
