# queue 7 (core 0): the lambda 0.1, 40-epoch layer, fine-tuned at lr 0.3, batch 20, with an L2 penalty on the weights
set -x
T="taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
I=search/weights/p_l0.1_lr0.05_e40.npz
$T finetune --tag f_l0.1e40--b20lr0.3l2_1e-5 --init $I --lr 0.3 --l2 1e-5
$T finetune --tag f_l0.1e40--b20lr0.3l2_1e-4 --init $I --lr 0.3 --l2 1e-4
$T finetune --tag f_l0.1e40--b20lr0.3e60 --init $I --lr 0.3 --epochs 60
