from occlum.jvm.options import effective_jvm_options, java_command


def test_occlum_flags_added_in_front() -> None:
    assert effective_jvm_options(("-Xmx512m",)) == ("-XX:-UseCompressedOops", "-Dos.name=Linux", "-Xmx512m")


def test_user_choice_wins() -> None:
    opts = ("-XX:+UseCompressedOops", "-Dos.name=Occlum")
    assert effective_jvm_options(opts) == opts


def test_one_default_kept_when_other_set() -> None:
    assert effective_jvm_options(("-XX:-UseCompressedOops",)) == ("-Dos.name=Linux", "-XX:-UseCompressedOops")


def test_java_command() -> None:
    assert java_command("/jre", ("-Xmx1g",), "/usr/lib/spring/app.jar", ("--port", "80")) == (
        "/jre/bin/java",
        "-Xmx1g",
        "-jar",
        "/usr/lib/spring/app.jar",
        "--port",
        "80",
    )
