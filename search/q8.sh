set -x
R=search/run.sh
W=search/weights
$R finetune --tag f_cae0.03_lr0.05--lr0.3exp0.95 --init $W/cae0.03_lr0.05_b10.npz --lr 0.3 --decay 0.95 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag f_cae0.03_lr0.05--b20lr0.6 --init $W/cae0.03_lr0.05_b10.npz --lr 0.6 --batch 20 --epochs 30 --shuffle-seed 1
