set -x
R=search/run.sh
W=search/weights
$R pretrain --tag p_cae0.1_lr0.05_b10_e21-40 --init $W/cae0.1_lr0.05_b10.npz --lam 0.1 --lr 0.05 --batch 10 --epochs 20 --shuffle-seed 2 --out $W/cae0.1_lr0.05_b10_e40.npz
$R finetune --tag f_cae0.1_lr0.05_e40--lr0.1x60 --init $W/cae0.1_lr0.05_b10_e40.npz --lr 0.1 --batch 10 --epochs 60 --shuffle-seed 1
$R finetune --tag f_cae0.1_lr0.05--lr0.1x60 --init $W/cae0.1_lr0.05_b10.npz --lr 0.1 --batch 10 --epochs 60 --shuffle-seed 1
$R finetune --tag f_cae0.1_lr0.05--lr0.05x60 --init $W/cae0.1_lr0.05_b10.npz --lr 0.05 --batch 10 --epochs 60 --shuffle-seed 1
