# Stage 5: the session's report (units table, figures, HTML page) from the analyzer's extensions.


def report_inputs(wildcards):
    session = S(wildcards)
    return {"analyzer": session.analyzer_root,
            "extensions": [session.extension_path(name) for name in session.extensions]}


rule report:
    input:
        unpack(report_inputs),
    output:
        report(
            directory("results/{session}/report"),
            patterns=["units.html", "units.csv", "{name}.png"],
            caption="../workflow/report/session.rst",
            category="Sessions",
            subcategory="{session}",
        ),
    params:
        peak_sign=lambda wildcards: S(wildcards).settings["report"]["peak_sign"],
        sicore=SICORE_VERSION,
    threads: 2  # two figures are drawn at once
    resources:
        mem_mb=mem_of("report"),
        runtime=runtime_of("report"),
    log:
        LOG + "report.log",
    benchmark:
        BENCHMARK + "report.tsv"
    message:
        "[{wildcards.session}] report: {output}/report.html"
    shell:
        # the analyzer folder is the parent of its recording_info folder
        "sicore report $(dirname {input.analyzer:q}) {output:q} --session-name {wildcards.session}"
        " --peak-sign {params.peak_sign} --n-jobs {threads} > {log:q} 2>&1"
