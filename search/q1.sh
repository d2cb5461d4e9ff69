# queue 1 (core 0): lambda 0.1, longer pre-training, each length fine-tuned as the table does
set -x
T="taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T pretrain --tag p_l0.1_lr0.05 --lam 0.1 --lr 0.05 --save-at 20 40 60
$T finetune --tag f_l0.1e60--b20lr0.6 --init search/weights/p_l0.1_lr0.05_e60.npz
$T finetune --tag f_l0.1e20--b20lr0.6 --init search/weights/p_l0.1_lr0.05_e20.npz
