// activation.cl: pointwise activations and their derivatives (f and f' from
// activation_math.cl, prepended to this file, which also defines `real`).
// act_forward:  y  = f(x)
// act_backward: dx = dy * f'(x), x being the forward *input*.

__kernel void act_forward(int n, int kind,
                          __global const real* x, int x_off,
                          __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = act_f(kind, x[x_off + i]);
}

__kernel void act_backward(int n, int kind,
                           __global const real* x, int x_off,
                           __global const real* dy, int dy_off,
                           __global real* dx, int dx_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    dx[dx_off + i] = dy[dy_off + i] * act_df(kind, x[x_off + i]);
}
