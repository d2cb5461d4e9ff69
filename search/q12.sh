# queue 12 (core 1): row 44 with a step that decays, lr 0.3 x 0.97^(e-1) (0.05 at epoch 60)
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.3d0.97e60 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.3 --decay 0.97 --epochs 60
