# queue 17 (both cores, two threads): the authors' own code's pre-training defaults
# (lambda 0.1, step 0.001, batch 10, 200 epochs), saved at 50, 100 and 200 epochs
set -x
T="env OMP_NUM_THREADS=2 .venv/bin/python search/tune.py"
$T pretrain --tag p_l0.1_lr0.001 --lam 0.1 --lr 0.001 --batch 10 --save-at 50 100 200
