# Stage 1: the session's recording and sorting, saved in SpikeInterface-compatible folders.


rule save_recording:
    input:
        lambda wildcards: S(wildcards).recording_inputs(),
    output:
        directory("results/{session}/{recording_dir}"),
    params:
        source=lambda wildcards: S(wildcards).recording_json(),
        options=params_of("save_recording"),
        sicore=SICORE_VERSION,
    threads: 4
    resources:
        mem_mb=mem_of("save_recording"),
        runtime=runtime_of("save_recording"),
    log:
        LOG + "{recording_dir}/save_recording.log",
    benchmark:
        BENCHMARK + "{recording_dir}/save_recording.tsv"
    message:
        "[{wildcards.session}] save_recording: saving the recording to {output}"
    shell:
        "sicore save-recording {params.source:q} {output:q} --params {params.options:q} --overwrite"
        " {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"


rule save_sorting:
    input:
        lambda wildcards: S(wildcards).sorting_inputs(),
    output:
        directory("results/{session}/sorting"),
    params:
        source=lambda wildcards: S(wildcards).sorting_json(),
        sicore=SICORE_VERSION,
    threads: 1
    resources:
        mem_mb=mem_of("save_sorting"),
        runtime=runtime_of("save_sorting"),
    log:
        LOG + "save_sorting.log",
    benchmark:
        BENCHMARK + "save_sorting.tsv"
    message:
        "[{wildcards.session}] save_sorting: saving the sorting to {output}"
    shell:
        "sicore save-sorting {params.source:q} {output:q} --format numpy_folder --overwrite > {log:q} 2>&1"
