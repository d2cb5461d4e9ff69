# queue 16 (core 1): a third of row 44's step, 150 epochs
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.1e150 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.1 --epochs 150
