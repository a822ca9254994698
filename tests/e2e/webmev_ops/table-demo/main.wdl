import "make_table.wdl" as make

workflow TableDemo {

    Int num_rows
    Int num_cols
    String scale

    # Internal: not in operation_spec.json, so it keeps this value
    Int seed = 7

    call make.makeTable as first {
        input: num_rows = num_rows, num_cols = num_cols, seed = seed, prefix = "a"
    }

    call make.makeTable as second {
        input: num_rows = num_rows, num_cols = num_cols, seed = seed + 1, prefix = "b"
    }

    call mergeTables {
        input: top = first.table, bottom = second.table, scale = scale
    }

    call countRows {
        input: table = mergeTables.merged
    }

    output {
        File merged = mergeTables.merged
        File summary = countRows.summary
    }
}

task mergeTables {
    File top
    File bottom
    String scale

    command {
        python3 /opt/software/merge_tables.py ${top} ${bottom} ${scale} merged.tsv
    }

    output {
        File merged = "merged.tsv"
    }

    runtime {
        docker: "ferrydemo/merge-tables:1.0"
        cpu: 1
        memory: "1 G"
    }
}

task countRows {
    File table

    command <<<
        rows=$(( $(wc -l < ${table}) - 1 ))
        echo "{\"rows\": $rows}" > summary.json
    >>>

    output {
        File summary = "summary.json"
    }

    runtime {
        docker: "docker.io/ferrydemo/count-rows"
        memory: "512 M"
    }
}
