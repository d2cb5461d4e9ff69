# queue 11 (core 0): row 44 with another order of the fine-tuning minibatches (shuffle seed 2)
set -x
T="taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.3e60s2 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.3 --epochs 60 --shuffle 2
