task makeTable {
    Int num_rows
    Int num_cols
    Int seed
    String prefix

    command {
        /opt/software/make_table.sh ${num_rows} ${num_cols} ${seed} ${prefix} > table.tsv
    }

    output {
        File table = "table.tsv"
    }

    runtime {
        docker: "ferrydemo/make-table"
        cpu: 1
        memory: "1 G"
    }
}
