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


def shard_command(pass_name, extra=""):
    """`sicore shard PASS` for one shard of an analyzer pass (the output is the shard's own folder)."""
    return ("sicore shard " + pass_name.replace("_", "-") + " --analyzer " + ANALYZER_FOLDER + extra +
            " --params {params.options:q} --shard {wildcards.shard} --num-shards {wildcards.num_shards}"
            " --shard-folder {output:q} {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1")


def gather_command(pass_name, extra=""):
    """`sicore gather PASS`: writes the extension from the shards (temp() outputs, consumed here)."""
    return ("sicore gather " + pass_name.replace("_", "-") + " --analyzer " + ANALYZER_FOLDER + extra +
            " --params {params.options:q} --num-shards {params.num_shards} --shard-folders {input.shards:q}"
            " --remove-shards {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1")


SHARDS = "results/{session}/shards/{analyzer_dir}/"  # + pass name + SHARD


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
    priority: 1  # on the chain to waveforms, templates and the report: before noise_levels
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
    wildcard_constraints:
        session=sessions_matching("waveforms", sharded=False),
    threads: threads_beside_sibling(4)
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
    wildcard_constraints:
        session=sessions_matching("templates", sharded=False),
    # from waveforms: an in-process reduction (one thread, so a sibling such as noise_levels keeps its core)
    threads: lambda wildcards: 1 if S(wildcards).templates_parent == "waveforms" else threads_beside_sibling(2)
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
    wildcard_constraints:
        session=sessions_matching("noise_levels", sharded=False),
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


# ------------------------------------------------------------------------------ sharded passes
# With `sharding` on, the session's pass runs as shard_<pass> jobs (one per time range, each reading
# the analyzer and writing only its own temp() folder outside it) and a gather_<pass> job, which
# writes the same extension folder as the unsharded rule (its children deleted as compute does).
# Shards wait only for what they read; the gather waits for the same parents as the unsharded rule.


rule shard_waveforms:
    input:
        analyzer=ANALYZER + "/recording_info",
        parents=parents_of("waveforms"),
    output:
        temp(directory(SHARDS + "waveforms/" + SHARD)),
    params:
        options=params_of("waveforms"),
        sicore=SICORE_VERSION,
    wildcard_constraints:
        session=sessions_matching("waveforms", sharded=True),
    priority: 1  # the chain to templates and the report: before noise_levels' shards
    threads: 1  # one shard is one (cluster) job
    resources:
        mem_mb=shard_mem_of("waveforms"),
        runtime=shard_runtime_of("waveforms"),
    log:
        LOG + "{analyzer_dir}/waveforms/" + SHARD + ".log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/waveforms/" + SHARD + ".tsv"
    message:
        "[{wildcards.session}] shard_waveforms: shard {wildcards.shard} of {wildcards.num_shards}"
    shell:
        shard_command("waveforms")


rule gather_waveforms:
    input:
        analyzer=ANALYZER + "/recording_info",
        parents=parents_of("waveforms"),
        shards=shards_of("waveforms"),
    output:
        directory(ANALYZER + "/extensions/waveforms"),
    params:
        options=params_of("waveforms"),
        sicore=SICORE_VERSION,
        num_shards=num_shards_of("waveforms"),
    wildcard_constraints:
        session=sessions_matching("waveforms", sharded=True),
    priority: 1  # the chain to templates and the report: before noise_levels' shards
    threads: 1
    resources:
        mem_mb=mem_of("waveforms"),  # all the waveforms, as unsharded
        runtime=runtime_of("waveforms"),
    log:
        LOG + "{analyzer_dir}/waveforms.gather.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/waveforms.gather.tsv"
    message:
        "[{wildcards.session}] gather_waveforms: {params.num_shards} shards, {params.options}"
    shell:
        gather_command("waveforms")


# templates are sharded only when computed from the recording (from waveforms they read no traces)
rule shard_templates:
    input:
        analyzer=ANALYZER + "/recording_info",
        random_spikes=ANALYZER + "/extensions/random_spikes",
    output:
        temp(directory(SHARDS + "templates/" + SHARD)),
    params:
        options=params_of("templates"),
        sicore=SICORE_VERSION,
    wildcard_constraints:
        session=sessions_matching("templates", sharded=True),
    threads: 1
    resources:
        mem_mb=shard_mem_of("templates"),
        runtime=shard_runtime_of("templates"),
    log:
        LOG + "{analyzer_dir}/templates/" + SHARD + ".log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/templates/" + SHARD + ".tsv"
    message:
        "[{wildcards.session}] shard_templates: shard {wildcards.shard} of {wildcards.num_shards}"
    shell:
        shard_command("templates", " --from random_spikes")


rule gather_templates:
    input:
        analyzer=ANALYZER + "/recording_info",
        parents=parents_of("templates"),
        shards=shards_of("templates"),
    output:
        directory(ANALYZER + "/extensions/templates"),
    params:
        options=params_of("templates"),
        parent=lambda wildcards: S(wildcards).templates_parent,
        sicore=SICORE_VERSION,
        num_shards=num_shards_of("templates"),
    wildcard_constraints:
        session=sessions_matching("templates", sharded=True),
    threads: 1
    resources:
        mem_mb=mem_of("templates"),
        runtime=runtime_of("templates"),
    log:
        LOG + "{analyzer_dir}/templates.gather.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/templates.gather.tsv"
    message:
        "[{wildcards.session}] gather_templates from {params.parent}: {params.num_shards} shards, {params.options}"
    shell:
        gather_command("templates", " --from random_spikes")


rule shard_noise_levels:
    input:
        analyzer=ANALYZER + "/recording_info",
    output:
        temp(directory(SHARDS + "noise_levels/" + SHARD)),
    params:
        options=params_of("noise_levels"),
        sicore=SICORE_VERSION,
    wildcard_constraints:
        session=sessions_matching("noise_levels", sharded=True),
    threads: 1
    resources:
        mem_mb=shard_mem_of("noise_levels"),
        runtime=shard_runtime_of("noise_levels"),
    log:
        LOG + "{analyzer_dir}/noise_levels/" + SHARD + ".log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/noise_levels/" + SHARD + ".tsv"
    message:
        "[{wildcards.session}] shard_noise_levels: shard {wildcards.shard} of {wildcards.num_shards}"
    shell:
        shard_command("noise_levels")


rule gather_noise_levels:
    input:
        analyzer=ANALYZER + "/recording_info",
        shards=shards_of("noise_levels"),
    output:
        directory(ANALYZER + "/extensions/noise_levels"),
    params:
        options=params_of("noise_levels"),
        sicore=SICORE_VERSION,
        num_shards=num_shards_of("noise_levels"),
    wildcard_constraints:
        session=sessions_matching("noise_levels", sharded=True),
    threads: 1
    resources:
        mem_mb=mem_of("noise_levels"),
        runtime=runtime_of("noise_levels"),
    log:
        LOG + "{analyzer_dir}/noise_levels.gather.log",
    benchmark:
        BENCHMARK + "{analyzer_dir}/noise_levels.gather.tsv"
    message:
        "[{wildcards.session}] gather_noise_levels: {params.num_shards} shards, {params.options}"
    shell:
        gather_command("noise_levels")
