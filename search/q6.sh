# queue 6 (core 1): the table's pre-training, fine-tuned at lr 0.3 (batch 20)
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.03e20--b20lr0.3 --init search/weights/p_l0.03_lr0.05_e20.npz --lr 0.3
