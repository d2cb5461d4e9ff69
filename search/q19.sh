# queue 19: row 44's fine-tuning from queue 17's 100-epoch layer (started while queue 17 still ran)
set -x
T="env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1lr0.001e100--b20lr0.3e60 --init search/weights/p_l0.1_lr0.001_e100.npz --lr 0.3 --epochs 60
