# queue 15 (core 0): row 44 given 150 epochs (is the fine-tuning budget what holds the row back?)
set -x
T="taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.3e150 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.3 --epochs 150
