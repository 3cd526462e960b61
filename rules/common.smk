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


# Every rule runs one `sicore` command; the job options come from the config's `job` section and the
# rule's threads (never from params: they do not change results, so they must not trigger reruns).
LOG = "results/{session}/logs/"
BENCHMARK = "results/{session}/benchmarks/"
ANALYZER = "results/{session}/{analyzer_dir}"  # in paths
ANALYZER_FOLDER = "results/{wildcards.session}/{wildcards.analyzer_dir}"  # in shell commands
