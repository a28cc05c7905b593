// winograd_srbs_layer -- the WinogradSRBS streaming layer: a 3x3 stride-1
// convolution by Winograd F(m x m, 3 x 3) (m in {2, 4}, t = m + 2) on
// Winograd-domain, sub-row-balanced sparse (SRBS) weights, exactly the integer
// result of winoforge.hw.winograd_op.winograd_srbs_reference.
//
// Streams (AXI-stream valid/ready, back-pressure on both sides, FINN's order):
//   in : NHWC, one beat = SIMD channels of one pixel (folded shape
//        (H, W, CIN/SIMD, SIMD)), lane c at in_tdata[c*IN_W +: IN_W];
//   out: NHWC (HO x WO, cropped where HO or WO is not a multiple of M), one beat
//        = OE channels of one pixel, lane e at out_tdata[e*OUT_W +: OUT_W]
//        (two's complement modulo 2^OUT_W: the low OUT_W bits of the result).
//
// Datapath (one frame after another, frames overlap):
//   line buffer  T+M row banks of W*SF words (SF = CIN/SIMD); a row enters a
//                free bank, a tile band releases the rows the next band does
//                not need.  The layer pads itself (PAD rows/columns of zeros;
//                tiles past the bottom/right edge read zeros as well).
//   window       per tile and input fold: T column reads (one word from each
//                of T row banks), then SIMD parallel input transforms
//                V = B^T d B (winograd_input_transform) -> V buffer.
//   V buffer     NVB slots (tiles k, k+1[, k+2]), per Winograd position a
//                bank of NVB*SF words of SIMD*V_W bits.  NVB = 3 lets the
//                window stage run two tiles ahead where a tile's PE work is
//                shorter than its T*SF window reads plus the pipeline.
//   PE array     per tile: output fold f (CF = COUT/PE) -> position group g
//                (G = T*T/POS) -> input fold s (innermost), one step a cycle;
//                POS x PE srbs_dot units, weights from the ROM read with
//                $readmemh(VALUES_FILE / INDICES_FILE) (the files of
//                WinogradSRBS_rtl.generate_hdl: line = all POS banks of one
//                address), accumulation over the SF input folds.
//   M collector  the T*T accumulators of PE channels -> PE output transforms
//                Y = A^T M A (winograd_output_transform).
//   output buf   two tile bands (M rows x WO x COUT), banks (i, j, e):
//                written by tiles (M*M*PE values), read as NHWC beats of OE.
//
// Widths (winoforge.hw.rtl.winograd_layer.layer_parameters): every stage
// computes modulo 2^width, so capping each at OUT_W is exact whenever the
// output fits OUT_W bits.  Plain synthesizable SystemVerilog, no vendor
// primitives; every memory has one write and one synchronous read port.

module winograd_srbs_layer #(
    parameter int M         = 2,
    parameter int H         = 8,
    parameter int W         = 8,
    parameter int CIN       = 4,
    parameter int COUT      = 4,
    parameter int PAD       = 1,
    parameter int SIMD      = 4,
    parameter int PE        = 2,
    parameter int POS       = 1,
    parameter int SUBROW    = 1,   // 1 with KEEP = 1: dense (no index memory)
    parameter int KEEP      = 1,
    parameter int IN_W      = 4,
    parameter int IN_SIGNED = 0,
    parameter int W_W       = 4,
    parameter int W_SIGNED  = 1,
    parameter int IDX_W     = 1,
    parameter int HAS_IDX   = 0,
    parameter int VMID_W    = 8,   // input transform: Z = B^T d
    parameter int V_W       = 8,   // V
    parameter int PROD_W    = 12,
    parameter int SUM_W     = 14,
    parameter int ACC_W     = 16,
    parameter int OMID_W    = 18,  // output transform: A^T M
    parameter int OUT_W     = 18,
    parameter int OE        = 2,   // output channels per beat (a divisor of COUT, >= PE)
    parameter int NVB       = 2,   // V buffer slots: 2, or 3 where the window stage is the bottleneck
    parameter     VALUES_FILE  = "",  // $readmemh files (the wrapper names them)
    parameter     INDICES_FILE = ""
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic                     in_tvalid,
    output logic                     in_tready,
    input  logic [SIMD * IN_W - 1:0] in_tdata,
    output logic                     out_tvalid,
    input  logic                     out_tready,
    output logic [OE * OUT_W - 1:0]  out_tdata
);
    localparam int T      = M + 2;
    localparam int T2     = T * T;
    localparam int ROWS   = T + M;
    localparam int SF     = CIN / SIMD;
    localparam int CF     = COUT / PE;
    localparam int G      = T2 / POS;
    localparam int HO     = H + 2 * PAD - 2;
    localparam int WO     = W + 2 * PAD - 2;
    localparam int TH     = (HO + M - 1) / M;
    localparam int TW     = (WO + M - 1) / M;
    localparam int LB_D   = W * SF;
    localparam int LANES  = SIMD / SUBROW * KEEP;
    localparam int NE     = POS * PE * LANES;
    localparam int WDEPTH = G * CF * SF;
    localparam int OBEATS = COUT / OE;
    localparam int OB_D   = 2 * TW * OBEATS;
    localparam int WIN    = SIMD * IN_W;
    localparam int VWORD  = SIMD * V_W;
    // address widths
    localparam int LB_AW  = (LB_D > 1) ? $clog2(LB_D) : 1;
    localparam int ROW_AW = $clog2(ROWS);
    localparam int V_AW   = (NVB * SF > 1) ? $clog2(NVB * SF) : 1;
    localparam int VS_W   = 2;  // slot index width
    localparam int W_AW   = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;
    localparam int OB_AW  = (OB_D > 1) ? $clog2(OB_D) : 1;

    // ------------------------------------------------------------------ line buffer
    int lb_count;                 // complete rows held
    int wr_beat;                  // beat within the row being written
    logic [ROW_AW - 1:0] wr_bank;
    logic [ROW_AW - 1:0] lb_base; // bank of the oldest row held
    int rel_rows;                 // rows released this cycle (window stage)
    logic in_fire, row_done;

    assign in_tready = (wr_beat != 0) || (lb_count < ROWS);
    assign in_fire   = in_tvalid && in_tready;
    assign row_done  = in_fire && (wr_beat == LB_D - 1);

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wr_beat  <= 0;
            wr_bank  <= '0;
            lb_count <= 0;
        end else begin
            if (in_fire) wr_beat <= row_done ? 0 : wr_beat + 1;
            if (row_done) wr_bank <= (wr_bank == ROW_AW'(ROWS - 1)) ? '0 : wr_bank + 1'b1;
            lb_count <= lb_count + (row_done ? 1 : 0) - rel_rows;
        end
    end

    logic [LB_AW - 1:0] lb_raddr;
    logic [WIN - 1:0]   lb_rd [ROWS];
    for (genvar r = 0; r < ROWS; r++) begin : g_lb
        logic [WIN - 1:0] mem [LB_D];
        always_ff @(posedge ap_clk) begin
            if (in_fire && wr_bank == ROW_AW'(r)) mem[wr_beat[LB_AW - 1:0]] <= in_tdata;
            lb_rd[r] <= mem[lb_raddr];
        end
    end

    // ------------------------------------------------------------------ window stage
    int   w_tr, w_tc, w_s, w_col;
    logic [VS_W - 1:0] w_half;   // V buffer slot being written
    logic [(1 << VS_W) - 1:0] vfull;  // V buffer slots holding a complete tile (NVB used)
    int   y0, ylo, yhi, need, ylo_next, x0;
    logic band_ok, w_issue, w_last_tile, w_last_band_step;
    logic [T - 1:0] row_ok;
    logic col_ok;
    logic [ROW_AW - 1:0] rot;

    always_comb begin
        y0       = w_tr * M - PAD;
        ylo      = (y0 > 0) ? y0 : 0;
        yhi      = (y0 + T - 1 < H - 1) ? y0 + T - 1 : H - 1;
        need     = (yhi >= ylo) ? yhi - ylo + 1 : 0;
        ylo_next = (y0 + M > 0) ? y0 + M : 0;
        band_ok  = lb_count >= need;
        w_issue  = band_ok && !vfull[w_half];
        x0       = w_tc * M - PAD + w_col;
        col_ok   = (x0 >= 0) && (x0 < W);
        lb_raddr = col_ok ? LB_AW'(x0 * SF + w_s) : '0;
        for (int k = 0; k < T; k++) row_ok[k] = (y0 + k >= 0) && (y0 + k < H);
        // bank of window row k = (lb_base + k - (ylo - y0)) mod ROWS, for valid rows
        rot = ROW_AW'(((ylo - y0 > T) ? 0 : (32'(lb_base) + ROWS - (ylo - y0)) % ROWS));
        w_last_tile      = (w_s == SF - 1) && (w_col == T - 1);
        w_last_band_step = w_last_tile && (w_tc == TW - 1);
        rel_rows = 0;
        if (w_issue && w_last_band_step) rel_rows = (w_tr == TH - 1) ? H - ylo : ylo_next - ylo;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            w_tr <= 0; w_tc <= 0; w_s <= 0; w_col <= 0; w_half <= '0; lb_base <= '0;
        end else if (w_issue) begin
            if (rel_rows != 0) lb_base <= ROW_AW'((32'(lb_base) + rel_rows) % ROWS);
            if (w_col != T - 1) w_col <= w_col + 1;
            else begin
                w_col <= 0;
                if (w_s != SF - 1) w_s <= w_s + 1;
                else begin
                    w_s <= 0;
                    w_half <= (w_half == VS_W'(NVB - 1)) ? '0 : w_half + 1'b1;
                    if (w_tc != TW - 1) w_tc <= w_tc + 1;
                    else begin
                        w_tc <= 0;
                        w_tr <= (w_tr == TH - 1) ? 0 : w_tr + 1;
                    end
                end
            end
        end
    end

    // stage A: line-buffer words arrive
    logic a_valid, a_last, a_col_ok;
    logic [VS_W - 1:0] a_half;
    int   a_col, a_s;
    logic [T - 1:0] a_row_ok;
    logic [ROW_AW - 1:0] a_rot;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) a_valid <= 1'b0;
        else a_valid <= w_issue;
        a_col <= w_col; a_s <= w_s; a_half <= w_half; a_last <= w_last_tile && w_issue;
        a_row_ok <= row_ok; a_col_ok <= col_ok; a_rot <= rot;
    end
    logic [WIN - 1:0] col_val [T];
    always_comb begin
        for (int k = 0; k < T; k++) begin
            col_val[k] = '0;
            for (int r = 0; r < ROWS; r++)
                if (a_col_ok && a_row_ok[k] && 32'(a_rot) + k - ((32'(a_rot) + k >= ROWS) ? ROWS : 0) == r)
                    col_val[k] = lb_rd[r];
        end
    end

    // stage B: the window (rows k, columns j); the last column joins combinationally
    logic [WIN - 1:0] win [T][T];
    always_ff @(posedge ap_clk) begin
        if (a_valid) for (int k = 0; k < T; k++) win[k][a_col] <= col_val[k];
    end
    logic tin_valid;
    assign tin_valid = a_valid && (a_col == T - 1);
    logic [T2 * V_W - 1:0] v_lane [SIMD];
    logic [SIMD - 1:0] itf_in_ready_unused, itf_out_valid_unused;
    for (genvar c = 0; c < SIMD; c++) begin : g_itf
        logic [T2 * IN_W - 1:0] tile;
        for (genvar k = 0; k < T; k++) begin : g_r
            for (genvar j = 0; j < T; j++) begin : g_c
                if (j == T - 1) begin : g_last
                    assign tile[(k * T + j) * IN_W +: IN_W] = col_val[k][c * IN_W +: IN_W];
                end else begin : g_held
                    assign tile[(k * T + j) * IN_W +: IN_W] = win[k][j][c * IN_W +: IN_W];
                end
            end
        end
        winograd_input_transform #(
            .M(M), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .MID_W(VMID_W), .OUT_W(V_W), .LATENCY(1)
        ) u_itf (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in_valid(tin_valid), .in_ready(itf_in_ready_unused[c]),
            .in_data(tile), .out_valid(itf_out_valid_unused[c]), .out_ready(1'b1), .out_data(v_lane[c])
        );
    end
    // stage C: V written (transform latency 1)
    logic c_valid, c_last;
    logic [VS_W - 1:0] c_half;
    int   c_s;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) c_valid <= 1'b0;
        else c_valid <= tin_valid;
        c_s <= a_s; c_half <= a_half; c_last <= a_last;
    end

    // ------------------------------------------------------------------ V buffer
    int   p_f, p_g, p_s;
    logic [VS_W - 1:0] p_half;
    logic p_issue, p_last, pipe_en;
    logic [V_AW - 1:0] v_raddr;
    logic [VWORD - 1:0] v_rd [T2];
    assign v_raddr = V_AW'(32'(p_half) * SF + p_s);
    for (genvar xi = 0; xi < T2; xi++) begin : g_vbuf
        logic [VWORD - 1:0] mem [NVB * SF];
        logic [VWORD - 1:0] wdata;
        for (genvar c = 0; c < SIMD; c++) begin : g_lane
            assign wdata[c * V_W +: V_W] = v_lane[c][xi * V_W +: V_W];
        end
        always_ff @(posedge ap_clk) begin
            if (c_valid) mem[V_AW'(32'(c_half) * SF + c_s)] <= wdata;
            if (pipe_en) v_rd[xi] <= mem[v_raddr];
        end
    end
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) vfull <= '0;
        else for (int h = 0; h < NVB; h++) begin
            if (c_valid && c_last && c_half == VS_W'(h)) vfull[h] <= 1'b1;
            else if (p_issue && p_last && p_half == VS_W'(h)) vfull[h] <= 1'b0;
        end
    end

    // ------------------------------------------------------------------ PE array
    logic dot_ready;
    logic d_valid, d_first, d_last;
    int   d_g;
    assign pipe_en = !d_valid || dot_ready;
    assign p_issue = vfull[p_half] && pipe_en;
    assign p_last  = (p_f == CF - 1) && (p_g == G - 1) && (p_s == SF - 1);
    logic [W_AW - 1:0] w_raddr;
    assign w_raddr = W_AW'((p_f * G + p_g) * SF + p_s);
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            p_f <= 0; p_g <= 0; p_s <= 0; p_half <= '0;
        end else if (p_issue) begin
            if (p_s != SF - 1) p_s <= p_s + 1;
            else begin
                p_s <= 0;
                if (p_g != G - 1) p_g <= p_g + 1;
                else begin
                    p_g <= 0;
                    if (p_f != CF - 1) p_f <= p_f + 1;
                    else begin
                        p_f <= 0;
                        p_half <= (p_half == VS_W'(NVB - 1)) ? '0 : p_half + 1'b1;
                    end
                end
            end
        end
    end

    // weight ROM (synchronous read)
    logic [NE * W_W - 1:0]   wrom [WDEPTH];
    logic [NE * W_W - 1:0]   d_w;
    logic [NE * IDX_W - 1:0] d_idx;
    if (VALUES_FILE != "") begin : g_wrom_init
        initial $readmemh(VALUES_FILE, wrom);
    end
    always_ff @(posedge ap_clk) if (pipe_en) d_w <= wrom[w_raddr];
    if (HAS_IDX != 0) begin : g_idx
        logic [NE * IDX_W - 1:0] irom [WDEPTH];
        if (INDICES_FILE != "") begin : g_irom_init
            initial $readmemh(INDICES_FILE, irom);
        end
        always_ff @(posedge ap_clk) if (pipe_en) d_idx <= irom[w_raddr];
    end else begin : g_no_idx
        assign d_idx = '0;
    end

    // stage D: operands at the dots
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) d_valid <= 1'b0;
        else if (pipe_en) d_valid <= p_issue;
        if (pipe_en) begin
            d_g <= p_g; d_first <= (p_s == 0); d_last <= (p_s == SF - 1);
        end
    end

    logic [POS * PE - 1:0] dot_in_ready, dot_out_valid;
    logic [ACC_W - 1:0] dot_sum [POS][PE];
    logic col_ready;
    for (genvar j = 0; j < POS; j++) begin : g_pos
        logic [VWORD - 1:0] v_sel;
        always_comb begin
            v_sel = '0;
            for (int g = 0; g < G; g++) if (d_g == g) v_sel = v_rd[g * POS + j];
        end
        for (genvar p = 0; p < PE; p++) begin : g_pe
            localparam int E0 = (j * PE + p) * LANES;
            srbs_dot #(
                .SIMD(SIMD), .SUBROW(SUBROW), .KEEP(KEEP), .V_W(V_W), .W_W(W_W), .W_SIGNED(W_SIGNED),
                .IDX_W(IDX_W), .PROD_W(PROD_W), .SUM_W(SUM_W), .ACC_W(ACC_W), .MUL_REG(1), .TREE_REG_EVERY(1)
            ) u_dot (
                .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
                .in_valid(d_valid), .in_ready(dot_in_ready[j * PE + p]),
                .in_first(d_first), .in_last(d_last),
                .in_v(v_sel), .in_w(d_w[E0 * W_W +: LANES * W_W]), .in_idx(d_idx[E0 * IDX_W +: LANES * IDX_W]),
                .out_valid(dot_out_valid[j * PE + p]), .out_ready(col_ready), .out_sum(dot_sum[j][p])
            );
        end
    end
    assign dot_ready = &dot_in_ready;  // the dots run in lockstep

    // ------------------------------------------------------------------ M collector
    int   c_g;
    logic col_fire, mf_valid, otf_ready, ow_ready;
    logic [ACC_W - 1:0] mcol [T2][PE];
    logic [T2 * ACC_W - 1:0] mf [PE];
    assign col_ready = (c_g != G - 1) || !mf_valid || otf_ready;
    assign col_fire  = (&dot_out_valid) && col_ready;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            c_g <= 0;
            mf_valid <= 1'b0;
        end else begin
            if (mf_valid && otf_ready) mf_valid <= 1'b0;
            if (col_fire) begin
                c_g <= (c_g == G - 1) ? 0 : c_g + 1;
                if (c_g == G - 1) mf_valid <= 1'b1;
            end
        end
        for (int xi = 0; xi < T2; xi++) begin
            for (int p = 0; p < PE; p++) begin
                if (col_fire && c_g == xi / POS) mcol[xi][p] <= dot_sum[xi % POS][p];
                if (col_fire && c_g == G - 1)
                    mf[p][xi * ACC_W +: ACC_W] <= (xi / POS == G - 1) ? dot_sum[xi % POS][p] : mcol[xi][p];
            end
        end
    end

    // ------------------------------------------------------------------ output transforms
    logic [PE - 1:0] otf_in_ready, otf_out_valid;
    logic [M * M * OUT_W - 1:0] y [PE];
    for (genvar p = 0; p < PE; p++) begin : g_otf
        winograd_output_transform #(
            .M(M), .IN_W(ACC_W), .MID_W(OMID_W), .OUT_W(OUT_W), .LATENCY(1)
        ) u_otf (
            .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in_valid(mf_valid), .in_ready(otf_in_ready[p]),
            .in_data(mf[p]), .out_valid(otf_out_valid[p]), .out_ready(ow_ready), .out_data(y[p])
        );
    end
    assign otf_ready = &otf_in_ready;

    // ------------------------------------------------------------------ output buffer
    int   ow_f, ow_tc, woff, wbase;
    logic ow_half, ow_fire;
    logic [1:0] bfull;           // output-buffer bands complete, not yet streamed
    assign ow_ready = !bfull[ow_half];
    assign ow_fire  = (&otf_out_valid) && ow_ready;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            ow_f <= 0; ow_tc <= 0; ow_half <= 1'b0; woff <= 0; wbase <= 0;
        end else if (ow_fire) begin
            if (ow_f != CF - 1) begin
                ow_f <= ow_f + 1;
                if (woff + PE >= OE) begin woff <= woff + PE - OE; wbase <= wbase + 1; end
                else woff <= woff + PE;
            end else begin
                ow_f <= 0; woff <= 0; wbase <= 0;
                if (ow_tc != TW - 1) ow_tc <= ow_tc + 1;
                else begin
                    ow_tc <= 0;
                    ow_half <= !ow_half;
                end
            end
        end
    end

    // reader state
    int   r_tr, r_i, r_xd, r_xm, r_k, r_rows;
    logic r_half, r_ok, r_last, out_en;
    logic [OB_AW - 1:0] ob_raddr;
    assign out_en   = !out_tvalid || out_tready;
    assign r_ok     = bfull[r_half];
    assign r_rows   = (HO - r_tr * M < M) ? HO - r_tr * M : M;
    assign r_last   = (r_k == OBEATS - 1) && (r_xd * M + r_xm == WO - 1) && (r_i == r_rows - 1);
    assign ob_raddr = OB_AW'((32'(r_half) * TW + r_xd) * OBEATS + r_k);

    logic [OUT_W - 1:0] ob_rd [M][M][OE];
    for (genvar i = 0; i < M; i++) begin : g_obi
        for (genvar j = 0; j < M; j++) begin : g_obj
            for (genvar e = 0; e < OE; e++) begin : g_obe
                logic [OUT_W - 1:0] mem [OB_D];
                logic               we;
                logic [OB_AW - 1:0] waddr;
                logic [OUT_W - 1:0] wdata;
                if (OE == PE) begin : g_direct
                    assign we    = ow_fire;
                    assign waddr = OB_AW'((32'(ow_half) * TW + ow_tc) * OBEATS + ow_f);
                    assign wdata = y[e][(i * M + j) * OUT_W +: OUT_W];
                end else begin : g_rotate
                    int pe_src;
                    always_comb begin
                        pe_src = (e >= woff) ? e - woff : e - woff + OE;
                        we     = ow_fire && (pe_src < PE);
                        waddr  = OB_AW'((32'(ow_half) * TW + ow_tc) * OBEATS + wbase + ((e >= woff) ? 0 : 1));
                        wdata  = '0;
                        for (int p = 0; p < PE; p++) if (pe_src == p) wdata = y[p][(i * M + j) * OUT_W +: OUT_W];
                    end
                end
                always_ff @(posedge ap_clk) begin
                    if (we) mem[waddr] <= wdata;
                    if (out_en) ob_rd[i][j][e] <= mem[ob_raddr];
                end
            end
        end
    end

    int o_i, o_j;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            out_tvalid <= 1'b0;
            r_tr <= 0; r_i <= 0; r_xd <= 0; r_xm <= 0; r_k <= 0; r_half <= 1'b0;
        end else if (out_en) begin
            out_tvalid <= r_ok;
            o_i <= r_i;
            o_j <= r_xm;
            if (r_ok) begin
                if (r_k != OBEATS - 1) r_k <= r_k + 1;
                else begin
                    r_k <= 0;
                    if (r_xd * M + r_xm != WO - 1) begin
                        if (r_xm != M - 1) r_xm <= r_xm + 1;
                        else begin r_xm <= 0; r_xd <= r_xd + 1; end
                    end else begin
                        r_xm <= 0; r_xd <= 0;
                        if (r_i != r_rows - 1) r_i <= r_i + 1;
                        else begin
                            r_i <= 0;
                            r_half <= !r_half;
                            r_tr <= (r_tr == TH - 1) ? 0 : r_tr + 1;
                        end
                    end
                end
            end
        end
    end
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) bfull <= 2'b00;
        else for (int h = 0; h < 2; h++) begin
            if (ow_fire && ow_half == h[0] && ow_f == CF - 1 && ow_tc == TW - 1) bfull[h] <= 1'b1;
            else if (out_en && r_ok && r_last && r_half == h[0]) bfull[h] <= 1'b0;
        end
    end
    always_comb begin
        out_tdata = '0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++)
                if (o_i == i && o_j == j)
                    for (int e = 0; e < OE; e++) out_tdata[e * OUT_W +: OUT_W] = ob_rd[i][j][e];
    end

    logic unused;
    assign unused = &{1'b0, itf_in_ready_unused, itf_out_valid_unused};
endmodule
