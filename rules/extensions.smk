# Stage 4: the analyzer's extensions, one rule each; the output is the extension's folder (zarr: its
# group), so the DAG decides what to (re)compute:
#
#   random_spikes -> waveforms -> templates        noise_levels (independent)
#
# A child's input is its parent's folder: rerunning a parent reruns its children and nothing else.
# The library deletes an extension's children whenever it recomputes it, so a run that targets only
# a parent leaves no stale child on disk. Jobs on one analyzer may run at once: each writes only its
# own folder/group, atomically, and zarr analyzers keep no consolidated metadata to rewrite.

COMPUTE = (
    "sicore compute {rule} " + ANALYZER_FOLDER + " --params {params.options:q}"
    " {JOB_OPTIONS} --n-jobs {threads}"
)


def parents_of(name):
    """The folders of the extensions that `name` waits for (see Session.parents)."""
    def parents(wildcards):
        analyzer = ANALYZER.format(session=wildcards.session, analyzer_dir=wildcards.analyzer_dir)
        return [f"{analyzer}/extensions/{parent}" for parent in S(wildcards).parents(name)]
    return parents


rule random_spikes:
    input:
        analyzer=ANALYZER + "/recording_info",
    output:
        directory(ANALYZER + "/extensions/random_spikes"),
    params:
        options=params_of("random_spikes"),
        sicore=SICORE_VERSION,
    threads: 1
    resources:
        mem_mb=mem_of("random_spikes"),
        runtime=runtime_of("random_spikes"),
    log:
        LOG + "{analyzer_dir}/random_spikes.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/random_spikes.tsv"
    message:
        "[{wildcards.session}] random_spikes: {params.options}"
    shell:
        COMPUTE + " > {log:q} 2>&1"


rule waveforms:
    input:
        analyzer=ANALYZER + "/recording_info",
        parents=parents_of("waveforms"),
    output:
        directory(ANALYZER + "/extensions/waveforms"),
    params:
        options=params_of("waveforms"),
        sicore=SICORE_VERSION,
    threads: 4
    resources:
        mem_mb=mem_of("waveforms"),
        runtime=runtime_of("waveforms"),
    log:
        LOG + "{analyzer_dir}/waveforms.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/waveforms.tsv"
    message:
        "[{wildcards.session}] waveforms: {params.options}"
    shell:
        COMPUTE + " > {log:q} 2>&1"


rule templates:
    input:
        analyzer=ANALYZER + "/recording_info",
        parents=parents_of("templates"),
    output:
        directory(ANALYZER + "/extensions/templates"),
    params:
        options=params_of("templates"),
        parent=lambda wildcards: S(wildcards).templates_parent,
        sicore=SICORE_VERSION,
    threads: 2
    resources:
        mem_mb=mem_of("templates"),
        runtime=runtime_of("templates"),
    log:
        LOG + "{analyzer_dir}/templates.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/templates.tsv"
    message:
        "[{wildcards.session}] templates from {params.parent}: {params.options}"
    shell:
        COMPUTE + " --from {params.parent} > {log:q} 2>&1"


rule noise_levels:
    input:
        analyzer=ANALYZER + "/recording_info",
    output:
        directory(ANALYZER + "/extensions/noise_levels"),
    params:
        options=params_of("noise_levels"),
        sicore=SICORE_VERSION,
    threads: 1
    resources:
        mem_mb=mem_of("noise_levels"),
        runtime=runtime_of("noise_levels"),
    log:
        LOG + "{analyzer_dir}/noise_levels.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/noise_levels.tsv"
    message:
        "[{wildcards.session}] noise_levels: {params.options}"
    shell:
        COMPUTE + " > {log:q} 2>&1"
