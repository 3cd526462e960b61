# Stage 2: which channels each unit uses, estimated once and given to the analyzer.


rule estimate_sparsity:
    input:
        # the source itself when the save keeps its dtype (same traces): runs beside save_recording
        recording=lambda wildcards: S(wildcards).sparsity_recording_inputs(),
        sorting="results/{session}/sorting",
    output:
        sparsity="results/{session}/sparsity.json",
        # the same pass finds each unit's main channel: create_analyzer then needs no pass of its own
        main_channels="results/{session}/main_channels.json",
    params:
        recording=lambda wildcards: S(wildcards).sparsity_recording_argument(),
        options=params_of("estimate_sparsity"),
        sicore=SICORE_VERSION,
    threads: threads_beside_sibling(2)
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
        "sicore estimate-sparsity {params.recording:q} {input.sorting:q} {output.sparsity:q}"
        " --main-channels {output.main_channels:q} --params {params.options:q}"
        " {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"
