# Stage 3: the SortingAnalyzer. The rule declares the analyzer's own `recording_info` folder (present in
# both formats, never written by extensions): the extension folders inside the analyzer belong to
# the extension rules, and an output may not lie inside another rule's directory output.


def analyzer_inputs(wildcards):
    session = S(wildcards)
    return {
        "recording": session.recording_path,
        "sorting": session.sorting_path,
        # an empty list formats as nothing in the shell command: dense analyzers get no file
        "sparsity": [session.sparsity_path] if session.sparse else [],
        "main_channels": [session.main_channels_path] if session.sparse else [],
    }


rule create_analyzer:
    input:
        unpack(analyzer_inputs),
    output:
        directory(ANALYZER + "/recording_info"),
    params:
        options=lambda wildcards: S(wildcards).create_analyzer_options(),
        sicore=SICORE_VERSION,
    threads: 1
    resources:
        mem_mb=mem_of("create_analyzer"),
        runtime=runtime_of("create_analyzer"),
    log:
        LOG + "{analyzer_dir}/create_analyzer.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/create_analyzer.tsv"
    message:
        "[{wildcards.session}] create_analyzer: results/{wildcards.session}/{wildcards.analyzer_dir}"
    shell:
        # --overwrite: a new analyzer replaces the old one with all its extensions
        "sicore create-analyzer {input.recording:q} {input.sorting:q} " + ANALYZER_FOLDER + " {params.options}"
        " {input.sparsity} --overwrite {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"
