workflow HierarchicalCluster {

    # A numeric matrix (genes x samples)
    File input_matrix

    # The clustering's choices (operation_spec.json lists the allowed values)
    String distance_metric
    String clustering_dimension
    String linkage

    call clusterMatrix {
        input:
            input_matrix = input_matrix,
            distance_metric = distance_metric,
            clustering_dimension = clustering_dimension,
            linkage = linkage
    }

    output {
        File observation_clusters = clusterMatrix.observation_clusters
        File feature_clusters = clusterMatrix.feature_clusters
    }
}

task clusterMatrix {

    File input_matrix
    String distance_metric
    String clustering_dimension
    String linkage

    # Internal: not in operation_spec.json, so never an operation input
    String observations_output = "observations_hcl.json"
    String features_output = "features_hcl.json"
    Int disk_size = 20

    command <<<
        echo '{}' > ${observations_output}
        echo '{}' > ${features_output}
        python3 /usr/local/bin/run_hcl.py -i ${input_matrix} \
            -d ${distance_metric} \
            -l ${linkage} \
            -c ${clustering_dimension} \
            -o ${observations_output} \
            -f ${features_output}
    >>>

    output {
        File observation_clusters = "${observations_output}"
        File feature_clusters = "${features_output}"
    }

    runtime {
        docker: "ghcr.io/web-mev/mev-hcl"
        cpu: 4
        memory: "30 G"
        disks: "local-disk " + disk_size + " HDD"
    }
}
