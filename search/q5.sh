# queue 5 (core 0): lambda 0.1, 40 epochs, fine-tuned at a step between 0.1 and 0.6
set -x
T="taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.3 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.3
