# Stage 2: which channels each unit uses, estimated once and given to the analyzer.


rule estimate_sparsity:
    input:
        recording=lambda wildcards: S(wildcards).recording_path,
        sorting="results/{session}/sorting",
    output:
        "results/{session}/sparsity.json",
    params:
        options=params_of("estimate_sparsity"),
        sicore=SICORE_VERSION,
    threads: 2
    resources:
        mem_mb=mem_of("estimate_sparsity"),
        runtime=runtime_of("estimate_sparsity"),
    log:
        LOG + "estimate_sparsity.log",
    benchmark:
        BENCHMARK + "estimate_sparsity.tsv"
    message:
        "[{wildcards.session}] estimate_sparsity: {output}"
    shell:
        "sicore estimate-sparsity {input.recording:q} {input.sorting:q} {output:q} --params {params.options:q}"
        " {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"
