# Shared helpers of the rules: the session of a job, its params and its resource estimates.
# Everything is computed by workflow/sicore_workflow (settings.py, resources.py).


def S(wildcards):
    """The Session of a job."""
    return SESSIONS[wildcards.session]


def params_of(operation):
    """The operation's parameters as canonical JSON (a change reruns the job)."""
    return lambda wildcards: S(wildcards).params_json(operation)


def mem_of(operation):
    return lambda wildcards, threads, attempt: estimate.mem_mb(S(wildcards), operation, threads, attempt)


def runtime_of(operation):
    return lambda wildcards, threads, attempt: estimate.runtime_min(S(wildcards), operation, threads, attempt)


# Threads of the rules that have a sibling branch in the DAG (save_recording beside save_sorting and
# estimate_sparsity, waveforms beside noise_levels). On a machine with few local cores such a job
# would otherwise take every core and leave its sibling waiting, a chain of short jobs each paying
# its start-up in turn; it leaves the sibling one core instead. On a cluster (and inside a cluster
# job) every job gets its own allocation, so the rule's full request stands.
LOCAL_CORES = workflow.resource_settings.cores if workflow.local_exec and not workflow.remote_exec else None


def threads_beside_sibling(wanted):
    """`wanted` threads, or all local cores but one (at least one) when that is fewer."""
    if not isinstance(LOCAL_CORES, int) or LOCAL_CORES > wanted:
        return wanted
    return max(1, LOCAL_CORES - 1)


# Every rule runs one `sicore` command; the job options come from the config's `job` section and the
# rule's threads (never from params: they do not change results, so they must not trigger reruns).
LOG = "results/{session}/logs/"
BENCHMARK = "results/{session}/benchmarks/"
ANALYZER = "results/{session}/{analyzer_dir}"  # in paths
ANALYZER_FOLDER = "results/{wildcards.session}/{wildcards.analyzer_dir}"  # in shell commands


# ------------------------------------------------------------------------------ sharded passes
# A pass that a session shards (config `sharding`) runs as N shard jobs (rule shard_<pass>, one
# single-threaded job per time range, each writing only its own temp() folder under
# results/{session}/shards/) plus a gather job (rule gather_<pass>) that writes the pass's usual
# output from them. Which rule makes a session's output is decided by the session wildcard:
# the unsharded rule only matches the sessions that do not shard the pass, the gather rule only
# those that do, so the unsharded path is untouched when sharding is off.
SHARD = "shard-{shard}-of-{num_shards}"  # sicore.sharding_plan.shard_folder_name


wildcard_constraints:
    shard=r"\d+",
    num_shards=r"\d+",


def sessions_matching(pass_name, sharded):
    """A regex of the sessions that shard `pass_name` (sharded=True) or run it as one job."""
    names = [name for name, session in SESSIONS.items() if session.sharded(pass_name) == sharded]
    return "|".join(re.escape(name) for name in names) or "(?!)"


def shards_of(pass_name):
    """The shard folders a gather waits for, in shard order."""
    return lambda wildcards: S(wildcards).shard_folders(pass_name)


def num_shards_of(pass_name):
    # in params: a new shard count is a new plan, so the gather reruns
    return lambda wildcards: S(wildcards).num_shards(pass_name)


def shard_mem_of(operation):
    return lambda wildcards, attempt: estimate.shard_mem_mb(S(wildcards), operation, int(wildcards.num_shards), attempt)


def shard_runtime_of(operation):
    return lambda wildcards, attempt: estimate.shard_runtime_min(S(wildcards), operation, int(wildcards.num_shards),
                                                                 attempt)
