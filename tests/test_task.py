"""Task files: strict validation with errors that name the file, the key path and close names."""
import pytest

from bench.task import TaskError, load_task, spec_hash, discover_tasks
from support import SMALL_TASK


def error_of(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "task.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(TaskError) as caught:
        load_task(path)
    message = str(caught.value)
    assert str(path) in message  # every problem names the file
    return message


def test_valid_task_loads(task_file):
    task = load_task(task_file)
    assert task.name == "tiny" and task.main_metric == "accuracy"
    assert task.pairs() == [("digits-mlp-w32-s0", "digits-mlp-w32-s1"), ("digits-mlp-w32-s1", "digits-mlp-w32-s0")]
    assert [m.display for m in task.methods] == ["absolute", "ortho", "linear"]


def test_unknown_key_names_path_and_suggests(tmp_path):
    message = error_of(tmp_path, SMALL_TASK.replace("seeds:", "seedz:"))
    assert "anchors.seedz: unknown key" in message and "'seeds'" in message


def test_wrong_type_names_path(tmp_path):
    message = error_of(tmp_path, SMALL_TASK.replace("counts: [16, 64]", "counts: [16, many]"))
    assert "anchors.counts[1]" in message


def test_unknown_names_suggest_closest(tmp_path):
    text = SMALL_TASK.replace("digits-mlp-w32-s1]", "digits-mlp-w32-s9]").replace("accuracy,", "acuracy,")
    text = text.replace("methods: [absolute, ortho, linear]", "methods: [absolute, orthoo, {name: linear, params: {preprocesing: none}}]")
    message = error_of(tmp_path, text)
    assert "encoders.all[1]: unknown encoder 'digits-mlp-w32-s9'" in message
    assert "metrics[0]: unknown metric 'acuracy'; did you mean 'accuracy'" in message
    assert "methods[1].name: unknown method 'orthoo'; did you mean 'ortho'" in message
    assert "methods[2].params.preprocesing" in message and "'preprocessing'" in message


@pytest.mark.parametrize("text, expected", [
    (b"", "the file is empty"),
    (b"\x00\xff\xfe\x80binary", "not a text file"),
    (b"name: [unclosed", "not valid YAML"),
    (b"- just\n- a list\n", "expected a mapping"),
    (SMALL_TASK.replace("version: 1", "version: -3").encode(), "version"),
    (SMALL_TASK.replace("{all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}", "{all: [digits-mlp-w32-s0]}").encode(), "encoders.all"),
    (SMALL_TASK.replace("anchors: {counts: [16, 64]", "anchors: {counts: [16, 16]").encode(), "unique"),
    (b"!!python/object/apply:os.system ['echo hacked']", "not valid YAML"),
])
def test_malformed_files(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_anchor_count_beyond_fit_split(tmp_path):
    from bench.task import check_against_data

    path = tmp_path / "big.yaml"
    path.write_text(SMALL_TASK.replace("counts: [16, 64]", "counts: [16, 100000]"))
    with pytest.raises(TaskError, match=r"anchors.counts\[1\]: 100000 anchors, but the fit split 'train' has only 1257"):
        check_against_data(load_task(path))


def test_spec_hash_ignores_description_but_not_counts(tmp_path):
    base = load_task(_write(tmp_path, "a.yaml", SMALL_TASK)).spec
    described = load_task(_write(tmp_path, "b.yaml", SMALL_TASK + "description: words\n")).spec
    recounted = load_task(_write(tmp_path, "c.yaml", SMALL_TASK.replace("[16, 64]", "[16, 65]"))).spec
    assert spec_hash(base) == spec_hash(described) != spec_hash(recounted)


def test_shipped_tasks_are_valid():
    tasks = discover_tasks()
    assert any(t.spec.default_suite for t in tasks)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path
