"""The hidden layer of the tutorial series' multi-layer perceptron.

A fully connected layer maps a minibatch of inputs x (one example per row,
n_in columns) to

    output = f(x W + b),   W: (n_in, n_out),   b: (n_out,)             (1)

with f the activation (tanh by default, the logistic sigmoid in the
stacked auto-encoders, or None for a linear layer). W starts uniform in

    [-r, r],   r = sqrt(6 / (n_in + n_out))          for tanh,         (2)
               r = 4 sqrt(6 / (n_in + n_out))        for the sigmoid,

the range of Glorot and Bengio (2010, "Understanding the difficulty of
training deep feedforward neural networks"): it keeps the variance of the
activations and of the back-propagated gradients about the same from layer
to layer at the start. The factor 4 comes from the slopes at 0: tanh'(0) =
1 but s'(0) = 1/4, since s(a) = (1 + tanh(a / 2)) / 2. b starts at zero.

A stacked auto-encoder (ScA.py) builds its layers from this class and hands
each layer's W and b to an auto-encoder, which trains them in place.
"""
# the stack first: without one, this says what to do
from machinery.backend import theano, T, sigmoid
import numpy


def initial_weight_bound(n_in, n_out, activation=T.tanh):
    """r of eq. (2): the half-width of W's initial uniform range."""
    bound = numpy.sqrt(6. / (n_in + n_out))
    if activation is sigmoid:
        bound *= 4
    return bound


class HiddenLayer(object):
    """A fully connected layer, eq. (1): output = activation(input W + b).

    rng: numpy.random.RandomState that draws the initial W (eq. 2).
    input: symbolic (batch, n_in) matrix.
    n_in, n_out: sizes of the input and of the layer.
    W, b: shared variables to use (not copied), of shapes (n_in, n_out) and
        (n_out,); None makes new ones, W as in eq. (2) and b zero.
    activation: a Theano elementwise function, or None for a linear layer.

    Attributes: input, W, b, output (the symbolic (batch, n_out) result),
    params = [W, b], activation.
    """

    def __init__(self, rng, input, n_in, n_out, W=None, b=None,
                 activation=T.tanh):
        floatX = theano.config.floatX
        self.input = input
        self.activation = activation
        if W is None:
            bound = initial_weight_bound(n_in, n_out, activation)
            W = theano.shared(
                numpy.asarray(rng.uniform(low=-bound, high=bound,
                                          size=(n_in, n_out)), dtype=floatX),
                name='W', borrow=True)
        if b is None:
            b = theano.shared(numpy.zeros(n_out, dtype=floatX), name='b',
                              borrow=True)
        self.W = W
        self.b = b
        pre_activation = T.dot(input, self.W) + self.b
        self.output = (pre_activation if activation is None
                       else activation(pre_activation))
        self.params = [self.W, self.b]
