version 1.0

# Counts the lines of a table, keeping the first ones as a preview.
workflow count_lines {
  input {
    File table
    Int preview_lines = 3
    String? label
    Array[String] tags = []
  }

  meta {
    description: "Counts a table's lines"
    version: "0.9"
  }

  call count { input: table = table, preview_lines = preview_lines, label = label }

  output {
    File preview = count.preview
    Int lines = count.lines
    Array[File] parts = [count.preview, count.summary]
  }
}

task count {
  input {
    File table
    Int preview_lines
    String? label
  }
  command <<<
    head -n ~{preview_lines} '~{table}' > preview.tsv
    echo '{"label": "~{default="table" label}"}' > summary.json
    cat '~{table}' | wc -l
  >>>
  output {
    File preview = "preview.tsv"
    File summary = "summary.json"
    Int lines = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
