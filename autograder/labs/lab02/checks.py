"""Lab 02 checks (trusted parent): compare the student's outputs with the references."""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase

HIDDEN = "after_due_date"


class ConfusionMatrixChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "confusion_matrix"), self.reference(cid)
        self.check_array(got, ref, "confmat", what="confusion_matrix", dtype_kind="iu", atol=0)

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_small(self):
        """confusion_matrix: 2x2 image, 3 classes (rows = targets, columns = preds)"""
        self._check("cm_small")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    def test_random(self):
        """confusion_matrix: random batch with ignored pixels"""
        self._check("cm_random")

    @weight(1)
    @number("1.3")
    @visibility(HIDDEN)
    def test_ignore_index_argument(self):
        """confusion_matrix: honours a non-default ignore_index"""
        self._check("cm_ignore_other")

    @weight(1)
    @number("1.4")
    @visibility(HIDDEN)
    def test_all_ignored(self):
        """confusion_matrix: every pixel ignored gives an all-zero matrix"""
        self._check("cm_all_ignored")

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_absent_classes(self):
        """confusion_matrix: classes absent from the batch still get rows and columns"""
        self._check("cm_absent_class")


class MeanIoUChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "mean_iou"), self.reference(cid)
        self.check_array(got, ref, "per_class_iou", what="per-class IoU", dtype_kind="f")
        self.check_number(got, ref, "miou", what="mIoU")

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_small(self):
        """mean_iou: 3x3 confusion matrix"""
        self._check("iou_small")

    @weight(2)
    @number("2.2")
    @visibility("visible")
    def test_absent(self):
        """mean_iou: a class absent from targets and predictions is NaN, excluded from the mean"""
        self._check("iou_absent")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_single_class(self):
        """mean_iou: only one class present"""
        self._check("iou_single_class")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_empty(self):
        """mean_iou: empty confusion matrix gives all NaN and a NaN mIoU"""
        self._check("iou_empty")

    @weight(1)
    @number("2.5")
    @visibility(HIDDEN)
    def test_random(self):
        """mean_iou: 19-class random confusion matrix"""
        self._check("iou_random")


class PipelineChecks(LabCase):
    @weight(2)
    @number("3.1")
    @visibility(HIDDEN)
    def test_dataset_level(self):
        """confusion_matrix + mean_iou accumulated over batches (dataset-level mIoU)"""
        self.exercise_ok("confusion_matrix")
        got, ref = self.outputs("pipeline", "mean_iou"), self.reference("pipeline")
        self.check_array(got, ref, "per_class_iou", what="per-class IoU", dtype_kind="f")
        self.check_number(got, ref, "miou", what="mIoU")
