"""The paper's experiments (Rifai et al., ICML 2011), apart from the
tutorial whose scripts they import: analysis.py (the analyses of
section 5), table1.py (Table 1 on MNIST), and what they share,
jacobian.py, statistics.py and figures.py."""
