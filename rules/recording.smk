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
    wildcard_constraints:
        session=sessions_matching("save_recording", sharded=False),
    threads: threads_beside_sibling(4)
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


# Sharded (config `sharding`): each shard job writes its time range's pieces into its own folder; the
# gather checks them all and writes the same folder as save_recording, byte for byte (binary_layout:
# single_file), or moves the pieces into it, joined by its si_folder.json (binary_layout: pieces).
rule shard_save_recording:
    input:
        lambda wildcards: S(wildcards).recording_inputs(),
    output:
        temp(directory("results/{session}/shards/{recording_dir}/save_recording/" + SHARD)),
    params:
        source=lambda wildcards: S(wildcards).recording_json(),
        options=params_of("save_recording"),
        binary_layout=lambda wildcards: S(wildcards).binary_layout,
        sicore=SICORE_VERSION,
    wildcard_constraints:
        session=sessions_matching("save_recording", sharded=True),
    threads: 1  # one shard is one (cluster) job
    resources:
        mem_mb=shard_mem_of("save_recording"),
        runtime=shard_runtime_of("save_recording"),
    log:
        LOG + "{recording_dir}/save_recording/" + SHARD + ".log",
    benchmark:
        BENCHMARK + "{recording_dir}/save_recording/" + SHARD + ".tsv"
    message:
        "[{wildcards.session}] shard_save_recording: shard {wildcards.shard} of {wildcards.num_shards}"
    shell:
        "sicore shard save-recording --recording {params.source:q} --params {params.options:q}"
        " --shard {wildcards.shard} --num-shards {wildcards.num_shards} --shard-folder {output:q}"
        " --binary-layout {params.binary_layout}"
        " {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"


rule gather_save_recording:
    input:
        source=lambda wildcards: S(wildcards).recording_inputs(),
        shards=shards_of("save_recording"),
    output:
        directory("results/{session}/{recording_dir}"),
    params:
        source=lambda wildcards: S(wildcards).recording_json(),
        options=params_of("save_recording"),
        binary_layout=lambda wildcards: S(wildcards).binary_layout,
        sicore=SICORE_VERSION,
        num_shards=num_shards_of("save_recording"),
    wildcard_constraints:
        session=sessions_matching("save_recording", sharded=True),
    threads: lambda wildcards: 2 if S(wildcards).gather_copies_traces else 1  # threads copy the pieces side by side
    resources:
        mem_mb=mem_of("save_recording"),
        runtime=runtime_of("save_recording"),
    log:
        LOG + "{recording_dir}/save_recording.gather.log",
    benchmark:
        BENCHMARK + "{recording_dir}/save_recording.gather.tsv"
    message:
        "[{wildcards.session}] gather_save_recording: {params.num_shards} shards to {output}"
    shell:
        # --remove-shards: the shards are temp() outputs, consumed here (a failed gather reruns them)
        "sicore gather save-recording --recording {params.source:q} --params {params.options:q}"
        " --num-shards {params.num_shards} --shard-folders {input.shards:q} --folder {output:q} --overwrite"
        " --binary-layout {params.binary_layout}"
        " --remove-shards {JOB_OPTIONS} --n-jobs {threads} > {log:q} 2>&1"


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
