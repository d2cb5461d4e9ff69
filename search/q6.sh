set -x
R=search/run.sh
W=search/weights
$R pretrain --tag p_cae0.01_lr0.05_b10 --lam 0.01 --lr 0.05 --batch 10 --epochs 20 --shuffle-seed 1 --save-at 10 --out $W/cae0.01_lr0.05_b10.npz
$R finetune --tag f_cae0.01_lr0.05_b10--lr0.3 --init $W/cae0.01_lr0.05_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag f_cae0.03_lr0.05--lr0.1x60 --init $W/cae0.03_lr0.05_b10.npz --lr 0.1 --batch 10 --epochs 60 --shuffle-seed 1
