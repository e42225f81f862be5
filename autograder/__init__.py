"""Course machinery: build student/solution copies and Gradescope zips from master notebooks
(``python -m autograder assign``) and grade submissions safely (``python -m autograder grade``)."""
