"""Rolling the InferenceService to a new champion's export, against a loopback stand-in of the Kubernetes
API: the patch is exactly the storageUri, a ready revision is reported ready, a failed one is reported
with KServe's reason, and no InferenceService (or no right to read it) means serving is off."""

from __future__ import annotations

import pytest
import yaml

from tests.support.kube_serving import NAMESPACE, failed, ready, serving_api
from trainboard.app.kustomize import MANIFESTS_DIR
from trainboard.serving_rollout import NAME, Rollout, export_uri, roll_out, served_uri

NEW = export_uri("gs://team-bucket/trainboard/models/20261207-run")


def the_components_service() -> dict:
    path = MANIFESTS_DIR / "components" / "serving" / "inferenceservice.yaml"
    service = yaml.safe_load(path.read_text())
    service["metadata"].update(namespace=NAMESPACE, generation=1)
    return service


def test_a_new_champion_is_rolled_out_by_patching_only_its_storage_uri():
    with serving_api() as api:
        api.services[NAME] = the_components_service()
        api.on_patched = lambda service: ready(service, "trainboard-champion-predictor-00002")
        assert served_uri(api.client(), NAMESPACE) == "gs://YOUR-BUCKET/trainboard/models/champion/serving"
        assert roll_out(api.client(), NAMESPACE, NEW, poll=0.01) == Rollout("ready", NEW)
        assert api.patches == [{"spec": {"predictor": {"model": {"storageUri": NEW}}}}]
        assert NEW == "gs://team-bucket/trainboard/models/20261207-run/serving"
        assert served_uri(api.client(), NAMESPACE) == NEW


def test_a_failed_rollout_is_reported_with_kserves_reason():
    with serving_api() as api:
        api.services[NAME] = the_components_service()
        api.on_patched = lambda service: failed(
            service, "RevisionFailed", "storage-initializer: 403 on gs://"
        )
        rollout = roll_out(api.client(), NAMESPACE, NEW, poll=0.01)
    assert rollout.state == "failed"
    assert rollout.message == "the new revision failed: RevisionFailed: storage-initializer: 403 on gs://"


def test_a_rollout_that_never_gets_ready_is_a_failure_after_its_timeout():
    with serving_api() as api:
        api.services[NAME] = the_components_service()
        rollout = roll_out(api.client(), NAMESPACE, NEW, timeout=0.2, poll=0.05)
    assert rollout.state == "failed" and "was not ready 0 s after the patch" in rollout.message


@pytest.mark.parametrize("forbidden", [False, True])
def test_without_the_serving_component_serving_is_off_and_nothing_is_patched(forbidden):
    with serving_api() as api:
        api.forbidden = forbidden
        assert roll_out(api.client(), NAMESPACE, NEW, poll=0.01) == Rollout("off")
        assert api.patches == []


def test_a_promotion_rolls_the_service_out_and_a_failed_rollout_leaves_the_record_and_is_shown(
    tmp_path, monkeypatch, capsys
):
    from tests.support.cli import in_process
    from tests.support.promotion import metrics_with_accuracy, model_folder
    from trainboard import serving_rollout
    from trainboard.artifacts.champion import read_champion
    from trainboard.components.promote.core import promote
    from trainboard.config import PromotionRule

    root = str(tmp_path / "root")
    with serving_api() as api:
        api.services[NAME] = the_components_service()
        api.on_patched = lambda service: ready(service, "r2")
        monkeypatch.setattr(serving_rollout, "cluster_serving", lambda: (api.client(), NAMESPACE))
        promote(
            root, "first", model_folder(tmp_path, "first"), metrics_with_accuracy(0.5), rule=PromotionRule()
        )
        assert api.patches[-1]["spec"]["predictor"]["model"]["storageUri"] == f"{root}/models/first/serving"
        api.on_patched = lambda service: failed(service, "RevisionFailed", "image pull back-off")
        promote(
            root, "second", model_folder(tmp_path, "second"), metrics_with_accuracy(0.9), rule=PromotionRule()
        )
        assert read_champion(root)[0].run == "second", "the record stays the truth"
        code, out, _ = in_process(capsys, "champion", "show", "--root", root)
    assert code == 0
    assert f"does not serve the record's {root}/models/second/serving: the new revision failed" in out, out


def test_without_a_cluster_promotion_and_show_say_nothing_of_serving(tmp_path, capsys):
    from tests.support.cli import in_process
    from tests.support.promotion import metrics_with_accuracy, model_folder
    from trainboard.components.promote.core import promote
    from trainboard.config import PromotionRule

    root = str(tmp_path / "root")
    first = model_folder(tmp_path, "first")
    promote(root, "first", first, metrics_with_accuracy(0.5), rule=PromotionRule())
    code, out, _ = in_process(capsys, "champion", "show", "--root", root)
    assert code == 0 and "served" not in out


def test_the_run_card_links_the_export_the_inferenceservice_rolls_to():
    from trainboard.components.start_run.core import run_card

    card = run_card("r1", "gs://team-bucket/trainboard", "")
    row = "InferenceService `trainboard-champion` (manifests/components/serving) rolls to it"
    assert f"{row} | `gs://team-bucket/trainboard/models/r1/serving/` |" in card
