version 1.0

# Writes rows of numbered files (row 0 has 1.txt and 2.txt, row 1 has 1.txt, row 2 none), one
# report.txt per sample, each in a folder of its own, and a summary: outputs whose structure and
# repeated file names Ferry must keep apart.
workflow structured_outputs {
  input {
    Array[Int] row_sizes = [2, 1, 0]
    Array[String] samples = ["s1", "lib 2/b"]
  }

  scatter (row in range(length(row_sizes))) {
    call write_row { input: row = row, size = row_sizes[row] }
  }

  call write_reports { input: samples = samples }

  output {
    Array[Array[File]] grid = write_row.files
    Map[String, File] by_sample = write_reports.reports
    Map[String, String] sizes = write_reports.sizes
    Int file_count = length(flatten(write_row.files))
    Pair[Int, File] summary = (length(samples), write_reports.summary)
  }
}

task write_row {
  input {
    Int row
    Int size
  }
  command <<<
    i=1
    while [ "$i" -le ~{size} ]; do
      echo "row ~{row} item $i" > "$i.txt"
      i=$((i + 1))
    done
  >>>
  output {
    Array[File] files = glob("*.txt")
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

task write_reports {
  input {
    Array[String] samples
  }
  command <<<
    n=0
    while read -r sample; do
      n=$((n + 1))
      mkdir -p "sample$n"
      echo "report for $sample" > "sample$n/report.txt"
      printf '%s\t%s\n' "$sample" "sample$n/report.txt" >> reports.tsv
      printf '%s\t%s\n' "$sample" "$(wc -c < "sample$n/report.txt" | tr -d ' ')" >> sizes.tsv
    done < ~{write_lines(samples)}
    echo "$n samples" > summary.txt
  >>>
  output {
    Map[String, File] reports = read_map("reports.tsv")
    Map[String, String] sizes = read_map("sizes.tsv")
    File summary = "summary.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
