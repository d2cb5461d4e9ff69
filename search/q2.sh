# queue 2 (core 1): the table's pre-training (lambda 0.03, 20 epochs), longer fine-tuning with a decaying step
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T pretrain --tag p_l0.03_lr0.05 --lam 0.03 --lr 0.05 --save-at 20
$T finetune --tag f_l0.03e20--b20lr0.6 --init search/weights/p_l0.03_lr0.05_e20.npz
$T finetune --tag f_l0.03e20--b20lr0.6d0.95e60 --init search/weights/p_l0.03_lr0.05_e20.npz --decay 0.95 --epochs 60
