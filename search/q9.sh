# queue 9 (core 1): fine-tuning at lr 0.3, batch 20, from the lambda 0.1 layers of 20 and 60 epochs (queue 8 stopped after 20 epochs of its first run: the smaller step for layer 1 trailed row 39 by 0.3 points)
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e20--b20lr0.3 --init search/weights/p_l0.1_lr0.05_e20.npz --lr 0.3
$T finetune --tag f_l0.1e60--b20lr0.3 --init search/weights/p_l0.1_lr0.05_e60.npz --lr 0.3
