# queue 8 (core 1): the same layer, fine-tuned at lr 0.3, batch 20, with a smaller step for the pre-trained layer
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
I=search/weights/p_l0.1_lr0.05_e40.npz
$T finetune --tag f_l0.1e40--b20lr0.3w1s0.3 --init $I --lr 0.3 --w1-scale 0.3
$T finetune --tag f_l0.1e40--b20lr0.3w1s0.1 --init $I --lr 0.3 --w1-scale 0.1
