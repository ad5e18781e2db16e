"""Step 6's lint against the labelled corpus in tests/lint_corpus (`make lint-corpus` prints the
same figures): Atlas's MySQL lint tests, django-migration-linter's and strong_migrations'
hazards, and ours. The cases with production rows are then applied to production: every
"this revision will fail" must fail, nothing else may, and rows said lost must be gone."""

import pytest

from tutorial_kit.lint_corpus import figures, load, measure, report


@pytest.mark.xdist_group("lint_corpus")  # a long one: started first, on a worker of its own
def test_lint_corpus_recall_precision_and_no_crash(server):
    cases = load()
    assert len(cases) >= 150
    outcomes = measure(server, cases, workers=4)
    summary = report(outcomes)
    f = figures(outcomes)
    assert f["crashes"] == 0, summary
    assert f["wrong verdicts"] == 0, summary
    assert f["recall"] >= 0.95 and f["precision"] >= 0.95, summary
