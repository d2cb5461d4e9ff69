# queue 3 (core 1, after queue 2): lambda 0.1 at 20 and 40 epochs, fine-tuned as the table does
while pgrep -f "bash search/q2.sh" > /dev/null; do sleep 10; done
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e20--b20lr0.6 --init search/weights/p_l0.1_lr0.05_e20.npz
while [ ! -e search/weights/p_l0.1_lr0.05_e40.npz ]; do sleep 10; done
$T finetune --tag f_l0.1e40--b20lr0.6 --init search/weights/p_l0.1_lr0.05_e40.npz
