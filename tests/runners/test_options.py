from mmfeat.runners.options import pipeline_options, runner_name


def test_default_runner_is_direct_and_flags_pass_through():
    options = pipeline_options(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert runner_name(options) == "DirectRunner"
    assert options.get_all_options()["direct_num_workers"] == 2
    assert runner_name(pipeline_options(["--runner=SomethingElse"])) == "SomethingElse"
