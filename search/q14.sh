# queue 14 (core 1): row 47 (shuffle seed 2), scoring the mean parameters of the last 10 epochs
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.3e60s2avg10 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.3 --epochs 60 --shuffle 2 --average 10
